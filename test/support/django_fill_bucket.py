"""Fills an S3 bucket the way a Django app and the S3 console do, for test/cli/sync-django-bucket.test.ts.

Run with Debian's python3 (django 3.2, django-storages 1.13, boto3 from apt). Files go through
S3Boto3Storage.save, as a FileField's storage saves them (NFD and NFC names, metadata and
Cache-Control from AWS_S3_OBJECT_PARAMETERS, a 30 MB file that boto3 uploads in parts); folder
markers and odd names go through boto3 as the S3 console and scripts write them. Prints one JSON
object: what was written, with the SHA-256 of every file.

Environment: S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, S3_BUCKET.
"""
import hashlib
import json
import os
import sys

import django
from django.conf import settings

settings.configure(
    AWS_ACCESS_KEY_ID=os.environ["S3_ACCESS_KEY"],
    AWS_SECRET_ACCESS_KEY=os.environ["S3_SECRET_KEY"],
    AWS_STORAGE_BUCKET_NAME=os.environ["S3_BUCKET"],
    AWS_S3_ENDPOINT_URL=os.environ["S3_ENDPOINT"],
    AWS_S3_REGION_NAME=os.environ.get("S3_REGION", "us-east-1"),
    AWS_S3_ADDRESSING_STYLE="path",
    AWS_S3_OBJECT_PARAMETERS={"CacheControl": "max-age=86400", "Metadata": {"uploaded-by": "crm-django"}},
)
django.setup()

from django.core.files.base import ContentFile  # noqa: E402
from storages.backends.s3boto3 import S3Boto3Storage  # noqa: E402

storage = S3Boto3Storage()
client = storage.connection.meta.client
bucket = os.environ["S3_BUCKET"]
files = {}


def remember(name, data, **extra):
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), **extra}


# Through Django, as an app's FileField saves uploads.
for name, data in [
    ("profile_images/Jose\u0301.jpg", b"\xff\xd8\xff photo uploaded from a Mac (decomposed name)"),
    ("profile_images/Jos\u00e9.jpg", b"\xff\xd8\xff photo uploaded from Windows (composed name)"),
    ("profile_images/abc.jpg", b"\xff\xd8\xff a plain name"),
    ("documents/Ren\u00e9e/cv.pdf", b"%PDF-1.4 a composed folder"),
]:
    saved = storage.save(name, ContentFile(data))
    remember(saved, data)

big = os.urandom(30 * 1000 * 1000)
saved = storage.save("videos/welcome.mp4", ContentFile(big))
remember(saved, big, etag=client.head_object(Bucket=bucket, Key=saved)["ETag"].strip('"'))

# Through boto3, as the S3 console and scripts write: folder markers, odd names, and a metadata
# value outside ASCII as S3 returns it (RFC 2047), which boto3 cannot send raw.
markers = ["profile_images/", "empty-folder/"]
for name in markers:
    client.put_object(Bucket=bucket, Key=name, Body=b"")
odd = ["./dot.jpg", "//double.jpg", "profile_images//twice.jpg", "ctl\x01.txt"]
for name in odd:
    client.put_object(Bucket=bucket, Key=name, Body=b"not a key")
note = "=?UTF-8?B?" + __import__("base64").b64encode("Jos\u00e9 \u65e5\u672c".encode()).decode() + "?="
console = b"uploaded in the S3 console"
client.put_object(Bucket=bucket, Key="documents/console.txt", Body=console, ContentType="text/plain", Metadata={"note": note})
remember("documents/console.txt", console)
client.put_object(Bucket=bucket, Key="documents/empty.txt", Body=b"")
remember("documents/empty.txt", b"")

json.dump({"files": files, "markers": markers, "odd": odd, "versions": {"django": django.get_version(), "storages": __import__("storages").__version__, "boto3": __import__("boto3").__version__}}, sys.stdout)
