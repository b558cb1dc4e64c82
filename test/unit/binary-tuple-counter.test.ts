/** The full dump's progress counter over PostgreSQL's binary COPY stream, whatever the chunk boundaries. */
import { describe, expect, it } from 'vitest';
import { BinaryTupleCounter, CopyProgress } from '../../src/pipeline/full-dump.js';

describe('BinaryTupleCounter', () => {
  it('counts binary tuples across any chunking of the stream', () => {
    // Signature, flags, a 3-byte header extension, two tuples (one NULL field), the trailer.
    const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.from([0, 0, 0, 0, 0, 0, 0, 3, 9, 9, 9])];
    const tuple = (fields: Array<Buffer | null>) => {
      const head = Buffer.alloc(2);
      head.writeInt16BE(fields.length);
      return Buffer.concat([head, ...fields.map((f) => {
        const length = Buffer.alloc(4);
        length.writeInt32BE(f === null ? -1 : f.length);
        return f === null ? length : Buffer.concat([length, f]);
      })]);
    };
    parts.push(tuple([Buffer.from('abc'), null]), tuple([Buffer.alloc(300, 1), Buffer.alloc(0)]), Buffer.from([0xff, 0xff]));
    const stream = Buffer.concat(parts);
    for (const size of [1, 2, 3, 5, 7, 64, stream.length]) {
      const counter = new BinaryTupleCounter();
      let tuples = 0;
      for (let i = 0; i < stream.length; i += size) tuples += counter.count(stream.subarray(i, i + size));
      expect(tuples, `chunks of ${size}`).toBe(2);
    }
  });

  it('counts every tuple of a long stream cut at uneven places (whole tuples inside a chunk and tuples across chunks)', () => {
    const head = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
    const tuples: Buffer[] = [];
    for (let t = 0; t < 1000; t++) {
      const fields = [Buffer.from([0, 1 + (t % 4)])];
      for (let f = 0; f < 1 + (t % 4); f++) {
        const size = (t * 7 + f * 13) % 90 - 10; // NULLs, empty fields and lengths up to 79
        const length = Buffer.alloc(4);
        length.writeInt32BE(size < 0 ? -1 : size);
        fields.push(length, Buffer.alloc(Math.max(0, size), t % 256));
      }
      tuples.push(Buffer.concat(fields));
    }
    const stream = Buffer.concat([head, ...tuples, Buffer.from([0xff, 0xff])]);
    for (const sizes of [[4096], [100, 3, 1, 77], [65536], [5, 1000, 2]]) {
      const counter = new BinaryTupleCounter();
      let counted = 0;
      for (let i = 0, k = 0; i < stream.length; k++) {
        const size = sizes[k % sizes.length] as number;
        counted += counter.count(stream.subarray(i, i + size));
        i += size;
      }
      expect(counted, `chunks of ${sizes.join(', ')}`).toBe(1000);
    }
  });

  it('reports rows through CopyProgress in binary mode, and newlines in text mode', async () => {
    const head = Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)]);
    const one = Buffer.from([0, 1, 0, 0, 0, 1, 10]); // one field holding a newline byte
    const binary = new CopyProgress(60_000, () => undefined, 'binary');
    const text = new CopyProgress(60_000, () => undefined, 'text');
    for (const progress of [binary, text]) {
      progress.resume();
      progress.write(Buffer.concat([head, one, one, one, Buffer.from([0xff, 0xff])]));
      progress.end();
      await new Promise((r) => progress.on('end', r));
    }
    expect(binary.rows).toBe(3);
    // Text mode counts every newline byte: the three fields' and the two of the signature (it is not text).
    expect(text.rows).toBe(3 + 2);
  });
});
