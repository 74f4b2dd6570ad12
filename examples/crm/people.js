// People (organisers, agents, leads) in a JSON file: enough persistence for a demo, rewritten
// atomically so a crash never leaves half a file.
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const ROLES = ['organiser', 'agent', 'lead'];

// Some seed people point at photos that were never uploaded here: the page must still look right.
const SEED = [
  { name: 'Ada Lovelace', role: 'organiser', photo: 'profile_images/ada-lovelace.jpg' },
  { name: 'Grace Hopper', role: 'organiser', photo: null },
  { name: 'Zhang Wei 张伟', role: 'agent', photo: 'profile_images/zhang-wei.png' },
  { name: 'Σωκράτης Παππάς', role: 'agent', photo: null },
  { name: '<script>alert("x")</script>', role: 'agent', photo: '../../etc/passwd' },
  { name: 'Madonna', role: 'lead', photo: '' },
  { name: 'محمد علي', role: 'lead', photo: 'profile_images/deleted-on-last-deploy.webp' },
  { name: 'Jean-Luc Picard', role: 'lead', photo: null },
];

export class PeopleStore {
  constructor(dataDir) {
    this.file = path.join(dataDir, 'people.json');
    mkdirSync(dataDir, { recursive: true });
    try {
      this.people = JSON.parse(readFileSync(this.file, 'utf8'));
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
      this.people = SEED.map((p) => ({ id: randomUUID(), ...p }));
      this.#write();
    }
  }

  all() {
    return this.people;
  }

  get(id) {
    return this.people.find((p) => p.id === id);
  }

  add(name, role) {
    const person = { id: randomUUID(), name, role, photo: null };
    this.people.push(person);
    this.#write();
    return person;
  }

  update(id, changes) {
    const person = this.get(id);
    if (!person) return undefined;
    Object.assign(person, changes);
    this.#write();
    return person;
  }

  remove(id) {
    const person = this.get(id);
    if (!person) return undefined;
    this.people = this.people.filter((p) => p.id !== id);
    this.#write();
    return person;
  }

  #write() {
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.people, null, 2)}\n`);
    renameSync(tmp, this.file);
  }
}
