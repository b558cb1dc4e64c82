/**
 * The pure part of data validation (src/core/validation.ts): equal values spelled differently
 * by two engines fold to one form, different values stay different, and the row hash is
 * MurmurHash3's.
 */
import { describe, expect, it } from 'vitest';
import { canonicalInetText, comparisonNormalizer, describeValidation, murmurHash32, summarizeValidation, type TableValidation, type Validation } from '../../src/core/validation.js';

const across = (type: string) => comparisonNormalizer(false, type);

describe('comparisonNormalizer', () => {
  it('keeps every value as is between two servers of the same engine', () => {
    const same = comparisonNormalizer(true, 'numeric');
    expect(same('12.30')).toBe('12.30');
    expect(same('12.3')).not.toBe(same('12.30'));
  });

  it('folds equal values of the documented mappings, and keeps different ones apart', () => {
    const cases: Array<[type: string, equal: string[], different: string]> = [
      ['numeric(10,2)', ['12.30', '12.3', '12.300000000000000000000000000000', '+12.3'], '12.31'],
      ['bigint', ['5826194355283022728', '5826194355283022728.0'], '5826194355283022729'],
      ['boolean', ['t', 'true', '1'], 'f'],
      ['real', ['4.1425958e+08', '414259600'], '414259700'],
      ['double precision', ['1e300', '1E+300'], '1e299'],
      ['timestamp with time zone', ['2024-01-01 10:00:00+00', '2024-01-01 10:00:00.000000', '2024-01-01 10:00:00'], '2024-01-01 10:00:01'],
      ['interval', ['557:59:32.20', '557:59:32.2'], '557:59:32.21'],
      ['character(4)', ['ab  ', 'ab'], 'abc'],
      ['jsonb', ['{"b": [1, 2.50], "a": "x"}', '{"a":"x","b":[1,2.5]}'], '{"a":"y","b":[1,2.5]}'],
      ['uuid', ['0E1F0C7A-0000-4000-8000-000000000001', '0e1f0c7a-0000-4000-8000-000000000001'], '0e1f0c7a-0000-4000-8000-000000000002'],
      ['inet', ['1f09::349b:ab22:0:68ab:0:369a', '1f09:0:349b:ab22:0:68ab:0:369a'], '1f09:0:349b:ab22:0:68ab:0:369b'],
    ];
    for (const [type, equal, different] of cases) {
      const normalize = across(type);
      for (const value of equal) expect(normalize(value), `${type}: ${value}`).toBe(normalize(equal[0] as string));
      expect(normalize(different), `${type}: ${different}`).not.toBe(normalize(equal[0] as string));
    }
  });

  it('leaves text alone: an empty string is not a NULL and trailing spaces of text count', () => {
    const text = across('text');
    expect(text('')).toBe('');
    expect(text('a ')).not.toBe(text('a'));
  });
});

describe('canonicalInetText', () => {
  it('spells out every group of an IPv6 address, keeps IPv4 and prefixes', () => {
    expect(canonicalInetText('::1')).toBe('0:0:0:0:0:0:0:1');
    expect(canonicalInetText('::ffff:1.2.3.4')).toBe(canonicalInetText('::ffff:102:304'));
    expect(canonicalInetText('fe80::/64')).toBe('fe80:0:0:0:0:0:0:0/64');
    expect(canonicalInetText('10.0.0.1/32')).toBe('10.0.0.1/32');
  });
});

describe('murmurHash32', () => {
  it('is MurmurHash3 x86 32-bit (reference vectors)', () => {
    const bytes = (s: string) => Buffer.from(s, 'utf8');
    const hash = (s: string, seed: number) => murmurHash32(bytes(s), 0, bytes(s).length, seed);
    expect(hash('', 0)).toBe(0);
    expect(hash('', 1)).toBe(0x514e28b7);
    expect(hash('hello', 0)).toBe(0x248bfa47);
    expect(hash('Hello, world!', 1234)).toBe(0xfaf6cdb3);
    expect(hash('The quick brown fox jumps over the lazy dog', 0)).toBe(0x2e4ff723);
  });

  it('hashes a range of a buffer like the same bytes alone', () => {
    const line = Buffer.from('xxhelloyy');
    expect(murmurHash32(line, 2, 7, 9)).toBe(murmurHash32(Buffer.from('hello'), 0, 5, 9));
  });
});

describe('describeValidation', () => {
  const table = (name: string, state: TableValidation['state']): TableValidation => ({
    table: name, destinationTable: name, state, keyed: true, sourceRows: 10, destinationRows: 10, sourceChecksum: 'a', destinationChecksum: 'a',
    estimatedRows: 10, differences: [], differencesTruncated: false, message: null,
  });
  const validation = (tables: TableValidation[], clean: boolean): Validation => ({
    id: 'v-1', jobId: 'j', status: 'SUCCEEDED', clean, createTime: 't', endTime: 't', actor: 'cli', recheckedInFlight: false,
    summary: summarizeValidation(tables), tables, error: null,
  });

  it('says all tables are equal, or which differ', () => {
    expect(describeValidation(validation([table('s.a', 'EQUAL'), table('s.b', 'EQUAL')], true))).toBe('Validation v-1: all 2 tables equal (40 rows compared)');
    expect(describeValidation(validation([table('s.a', 'EQUAL'), table('s.b', 'DIFFERENT'), table('s.c', 'ERROR')], false))).toBe(
      'Validation v-1: 1 of 3 tables equal, 1 differ (s.b), 1 could not be compared',
    );
  });
});
