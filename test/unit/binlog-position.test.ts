import { describe, expect, it } from 'vitest';
import { BinlogPosition, compareGtidStates, mysqlGtidCount, sameGtidState } from '../../src/engines/mysql/binlog-position.js';

const parse = BinlogPosition.parse;

describe('BinlogPosition text', () => {
  it('parses and formats every form, old ones included', () => {
    for (const text of [
      'mysql-bin.000042:1234',
      'mysql-bin.000042:1234#0-1-567',
      'mysql-bin.000042:1234#0-1-567,1-2-8@1',
      'mysql-bin.000042:4#@7',
      'mysql-bin.000042:1234@3e11fa47-71ca-11e1-9e33-c80aa9429562',
      'binlog.000003:157#3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7@3e11fa47-71ca-11e1-9e33-c80aa9429562',
    ]) {
      expect(parse(text).format()).toBe(text);
    }
    expect(parse('mysql-bin.000042:1234')).toMatchObject({ file: 'mysql-bin.000042', offset: 1234, gtid: null, server: null });
    expect(parse('mysql-bin.000042:4#@7')).toMatchObject({ gtid: '', server: '7' });
    expect(parse('b.000001:9#3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5')).toMatchObject({ gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5', server: null });
    // An '@' in the file name is not a server.
    expect(parse('host@x-bin.000001:9')).toMatchObject({ file: 'host@x-bin.000001', offset: 9, server: null });
  });

  it('refuses text that is no position, saying what one looks like', () => {
    for (const text of ['', 'mysql-bin.000001', 'mysql-bin.000001:', 'mysql-bin.000001:-4', ':4', 'mysql-bin.000001:1e3']) {
      expect(() => parse(text)).toThrow(/expected "<binlog file>:<offset>"/);
    }
  });
});

describe('BinlogPosition order', () => {
  it('orders positions of one server by file and offset, whatever their GTIDs', () => {
    expect(parse('m.000002:4#0-1-9@1').compare(parse('m.000001:900#0-1-9@1'))).toBeGreaterThan(0);
    expect(parse('m.000001:100#0-1-5@1').compare(parse('m.000001:200#0-1-5@1'))).toBeLessThan(0);
    expect(parse('m.000001:100').compare(parse('m.000001:100#0-1-5'))).toBe(0);
    expect(parse('m.000001:100@1').compare(parse('m.000001:100'))).toBe(0);
  });

  it('orders positions of two servers by GTID: equal states are the same point', () => {
    const onPrimary = parse('primary-bin.000009:5000#0-11-160@11');
    expect(onPrimary.compare(parse('replica-bin.000001:300#0-12-161@12'))).toBeLessThan(0);
    expect(parse('replica-bin.000001:300#0-12-161@12').compare(onPrimary)).toBeGreaterThan(0);
    expect(onPrimary.compare(parse('replica-bin.000001:90#0-11-160@12'))).toBe(0);
    expect(onPrimary.compare(parse('replica-bin.000001:90#0-11-150@12'))).toBeGreaterThan(0);
  });

  it('orders a position of an unknown server against a known one by GTID when the states differ', () => {
    expect(parse('m.000009:5000#0-1-100').compare(parse('m.000001:4#0-2-101@2'))).toBeLessThan(0);
    expect(parse('m.000009:5000#0-1-100').compare(parse('m.000009:6000#0-1-100@1'))).toBeLessThan(0);
  });

  it('refuses to order positions of two servers without GTIDs, offering Restart', () => {
    expect(() => parse('m.000001:100@1').compare(parse('m.000001:200#0-2-5@2'))).toThrow(/two different source servers.*Restart/);
  });

  it('measures distance only within one file of one server', () => {
    expect(parse('m.000001:100@1').distanceTo(parse('m.000001:250@1'))).toBe(150);
    expect(parse('m.000001:100').distanceTo(parse('m.000001:250@1'))).toBe(150);
    expect(parse('m.000001:100@1').distanceTo(parse('m.000001:250@2'))).toBeNull();
    expect(parse('m.000001:100@1').distanceTo(parse('m.000002:250@1'))).toBeNull();
  });
});

describe('GTID states', () => {
  it('compares MariaDB positions per domain', () => {
    expect(compareGtidStates('0-1-5', '0-1-5')).toBe(0);
    expect(compareGtidStates('0-1-5', '0-2-6')).toBeLessThan(0);
    expect(compareGtidStates('0-1-5,1-1-3', '0-1-5')).toBeGreaterThan(0);
    expect(compareGtidStates('', '0-1-1')).toBeLessThan(0);
    expect(compareGtidStates('0-1-18446744073709551615', '0-1-18446744073709551614')).toBeGreaterThan(0);
  });

  it('compares MySQL GTID sets by their number of transactions', () => {
    const uuid = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    expect(mysqlGtidCount(`${uuid}:1-5:7,2c256447-3f0d-431b-9a25-bddf1f1f6ef6:1-3`)).toBe(9n);
    expect(mysqlGtidCount(`${uuid}:1-5:tag_a:1-2`)).toBe(7n);
    expect(compareGtidStates(`${uuid}:1-5`, `${uuid}:1-6`)).toBeLessThan(0);
  });

  it('tells whether two MariaDB positions name the same transactions', () => {
    expect(sameGtidState('0-1-5,1-2-3', '1-2-3, 0-1-5')).toBe(true);
    expect(sameGtidState('0-1-5', '0-2-5')).toBe(false);
    expect(sameGtidState('', '')).toBe(true);
    expect(sameGtidState('0-1-5', '')).toBe(false);
  });
});
