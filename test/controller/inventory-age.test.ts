import { describe, expect, it } from 'vitest';
import { inventoryMaxAgeMs } from '../../src/controller/shared-reads.ts';

describe('inventoryMaxAgeMs', () => {
  it.each([
    // pages, floor, backstop grace, expected
    { pages: 2, floorMs: 2000, graceMs: 30_000, want: 4000 }, // a small account: close to the floor
    { pages: 1, floorMs: 2000, graceMs: 30_000, want: 2000 }, // never under the floor
    { pages: 6, floorMs: 2000, graceMs: 30_000, want: 12_000 }, // about one page every 2 s
    { pages: 15, floorMs: 2000, graceMs: 30_000, want: 15_000 }, // 1,000 objects: capped at half the grace
    { pages: 15, floorMs: 2000, graceMs: 10_000, want: 5000 }, // a short grace keeps it fresh
    { pages: 15, floorMs: 20_000, graceMs: 10_000, want: 20_000 }, // an explicit floor wins
  ])('$pages pages, floor $floorMs ms, grace $graceMs ms: $want ms', ({ pages, floorMs, graceMs, want }) => {
    expect(inventoryMaxAgeMs(pages, floorMs, graceMs)).toBe(want);
  });
});
