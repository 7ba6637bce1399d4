import { describe, expect, test } from 'vitest';
import { isStoreOutage } from '../../src/storage/outage.ts';

/** pg's errors carry the server's SQLSTATE as `code`. */
const pgError = (code: string, message = 'from the server') => Object.assign(new Error(message), { code });

/** What src/storage/outage.ts tells apart: a store out of reach (503, try again) from a refusal or a bug (500). */
describe('a store outage, told from a failure of ours', () => {
  test.each([
    ['08006', 'connection failure'],
    ['08001', 'unable to connect'],
    ['57P01', 'admin shutdown'],
    ['57014', 'a statement cancelled by statement_timeout'],
    ['53300', 'too many connections'],
  ])('SQLSTATE %s (%s) is an outage', (code) => {
    expect(isStoreOutage(pgError(code))).toBe(true);
  });

  test.each([
    ['08P01', 'a protocol violation: a statement sent with the wrong number of parameters'],
    ['23505', 'a unique violation'],
    ['42P01', 'an undefined table'],
  ])('SQLSTATE %s (%s) is not', (code) => {
    expect(isStoreOutage(pgError(code))).toBe(false);
  });

  test('the drivers’ own words for a lost or hung connection are, through a cause too', () => {
    expect(isStoreOutage(new Error('Query read timeout'))).toBe(true);
    expect(isStoreOutage(new Error('Client was closed and is not queryable'))).toBe(true);
    expect(isStoreOutage(new Error('wrapped', { cause: new Error('Command timed out') }))).toBe(true);
    expect(isStoreOutage(new TypeError('Cannot read properties of undefined'))).toBe(false);
  });
});
