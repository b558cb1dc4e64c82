import { describe, expect, it } from 'vitest';
import { FerryError } from '../../src/core/errors.js';
import { Lsn } from '../../src/engines/postgres/lsn.js';
import { postgresEngine } from '../../src/engines/postgres/postgres-engine.js';

describe('Lsn', () => {
  it('parses both text forms to the same value', () => {
    expect(Lsn.parse('16/B374D848').toBigInt()).toBe(0x16b374d848n);
    expect(Lsn.parse('00000016/B374D848').toBigInt()).toBe(0x16b374d848n);
    expect(Lsn.parse('0/1D93450').toBigInt()).toBe(0x1d93450n);
    expect(Lsn.parse('00000000/01D93420').toBigInt()).toBe(0x1d93420n);
    expect(Lsn.parse('16/b374d848').equals(Lsn.parse('16/B374D848'))).toBe(true);
    expect(Lsn.parse('FFFFFFFF/FFFFFFFF').toBigInt()).toBe((1n << 64n) - 1n);
  });

  it('formats as PostgreSQL prints: uppercase, no leading zeros', () => {
    expect(Lsn.parse('00000016/B374D848').format()).toBe('16/B374D848');
    expect(Lsn.parse('00000000/01D93420').format()).toBe('0/1D93420');
    expect(Lsn.parse('0/0').format()).toBe('0/0');
    expect(Lsn.fromBigInt(0x100000000n).format()).toBe('1/0');
    expect(String(Lsn.parse('a/b'))).toBe('A/B');
    expect(JSON.stringify({ at: Lsn.parse('0/10') })).toBe('{"at":"0/10"}');
  });

  it('rejects what is not an LSN with a FerryError', () => {
    for (const bad of ['', '16', '16/', '/1', '1/2/3', '123456789/0', '0/123456789', 'G/0', '-1/0', '0x1/0']) {
      expect(() => Lsn.parse(bad)).toThrow(FerryError);
    }
    expect(() => Lsn.fromBigInt(-1n)).toThrow(FerryError);
    expect(() => Lsn.fromBigInt(1n << 64n)).toThrow(FerryError);
  });

  it('compares by value, not by text', () => {
    // As text, '9/0' > '10/0' and '0/A' > '0/10'.
    expect(Lsn.compareText('9/0', '10/0')).toBeLessThan(0);
    expect(Lsn.compareText('0/A', '0/10')).toBeLessThan(0);
    expect(Lsn.compareText('00000001/00000000', '1/0')).toBe(0);
    expect(Lsn.compareText('1/1', '1/0')).toBeGreaterThan(0);
    expect(Lsn.parse('1/0').isAfter(Lsn.parse('0/FFFFFFFF'))).toBe(true);
    expect(Lsn.max(Lsn.parse('0/5'), Lsn.parse('0/7')).format()).toBe('0/7');
    expect(Lsn.ZERO.isZero()).toBe(true);
  });

  it('measures the distance in bytes, across the 4 GB boundary', () => {
    expect(Lsn.parse('0/FFFFFFF0').distance(Lsn.parse('1/10'))).toBe(0x20n);
    expect(Lsn.parse('1/10').distance(Lsn.parse('0/FFFFFFF0'))).toBe(-0x20n);
  });

  it('reads and writes the 64-bit big-endian wire form', () => {
    const buffer = Buffer.alloc(9);
    Lsn.parse('16/B374D848').write(buffer, 1);
    expect(buffer.subarray(1).toString('hex')).toBe('00000016b374d848');
    expect(Lsn.read(buffer, 1).format()).toBe('16/B374D848');
  });

  it('backs the engine position functions', () => {
    expect(postgresEngine.comparePositions('00000000/01D93420', '0/1D93450')).toBeLessThan(0);
    expect(postgresEngine.comparePositions('0/1D93450', '00000000/01D93450')).toBe(0);
    expect(postgresEngine.positionDistance('0/1D93420', '0/1D93450')).toBe(0x30);
  });
});
