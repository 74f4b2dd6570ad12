"""Runs real django-storages (S3Boto3Storage) for test/s3/django-interop.test.ts.

Reads one JSON request on stdin: {"env": {AWS_* variable: string}, "ops": [...]}, and writes one
JSON answer on stdout: {"versions": {...}, "results": [...]} with one result per op, or
{"error": "..."} when setting up Django failed.

The env variables become Django settings the way a settings.py fed from the environment turns
them into Python values (django-environ style: "False" is False, AWS_QUERYSTRING_EXPIRE an int),
so the test hands the very same variables to media-storage's configFromEnv. The credentials'
alias lookup (AWS_S3_ACCESS_KEY_ID before AWS_ACCESS_KEY_ID) is django-storages' own: the
variables are also put in os.environ, where S3Boto3Storage looks when no setting names them.

Ops: save {name, data (base64)} -> {name} (the name Django stored, after get_available_name);
url {name, expire?} -> {url}; exists {name} -> {exists}; stat {name} -> {size, content_type};
read {name} -> {data (base64)}; delete {name}.
"""
import base64
import json
import os
import sys

BOOLEANS = {'AWS_QUERYSTRING_AUTH', 'AWS_S3_FILE_OVERWRITE', 'AWS_S3_USE_SSL'}
INTEGERS = {'AWS_QUERYSTRING_EXPIRE'}
# Settings a settings.py would not take from the environment as such: django-storages reads
# these from os.environ itself (storages.backends.s3boto3.S3Boto3Storage.*_names).
# The credentials stay there too, so that its own lookup order (AWS_S3_ACCESS_KEY_ID first) decides.
ENV_ONLY = {
    'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN', 'AWS_DEFAULT_REGION', 'AWS_REGION',
    'AWS_S3_ACCESS_KEY_ID', 'AWS_ACCESS_KEY_ID', 'AWS_S3_SECRET_ACCESS_KEY', 'AWS_SECRET_ACCESS_KEY',
}


def to_setting(name, value):
    if name in BOOLEANS:
        return value.strip().lower() in ('1', 'true', 'yes', 'on')
    if name in INTEGERS:
        return int(value)
    if name == 'AWS_DEFAULT_ACL' and value.strip().lower() == 'none':
        return None
    return value


def main():
    request = json.load(sys.stdin)
    env = request['env']
    for name in list(os.environ):
        if name.startswith('AWS_'):
            del os.environ[name]
    os.environ.update(env)
    settings = {name: to_setting(name, value) for name, value in env.items() if name not in ENV_ONLY}
    try:
        import boto3
        import django
        from django.conf import settings as django_settings
        from django.core.files.base import ContentFile

        django_settings.configure(INSTALLED_APPS=[], USE_TZ=True, **settings)
        django.setup()
        import storages
        from storages.backends.s3boto3 import S3Boto3Storage

        storage = S3Boto3Storage()
    except Exception as err:  # reported to the test, which fails with it
        json.dump({'error': f'{type(err).__name__}: {err}'}, sys.stdout)
        return

    results = []
    for op in request['ops']:
        kind, name = op['op'], op['name']
        try:
            if kind == 'save':
                stored = storage.save(name, ContentFile(base64.b64decode(op['data'])))
                results.append({'name': stored})
            elif kind == 'url':
                results.append({'url': storage.url(name, expire=op.get('expire'))})
            elif kind == 'exists':
                results.append({'exists': storage.exists(name)})
            elif kind == 'stat':
                obj = storage.bucket.Object(storage._normalize_name(name))
                results.append({'size': storage.size(name), 'content_type': obj.content_type})
            elif kind == 'read':
                with storage.open(name, 'rb') as f:
                    results.append({'data': base64.b64encode(f.read()).decode('ascii')})
            elif kind == 'delete':
                storage.delete(name)
                results.append({})
            else:
                results.append({'error': f'unknown op {kind}'})
        except Exception as err:
            results.append({'error': f'{type(err).__name__}: {err}'})
    json.dump({
        'versions': {'django': django.__version__, 'django-storages': storages.__version__, 'boto3': boto3.__version__},
        'results': results,
    }, sys.stdout)


if __name__ == '__main__':
    main()
