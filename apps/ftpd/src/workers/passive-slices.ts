import { DEFAULT_SETTINGS } from '@ftp/server';

type Range = readonly [number, number];

/**
 * The share of a passive port range that worker `slot` (0-based) of `slots` uses: consecutive, disjoint, as even
 * as the range allows. Workers that shared the whole range would each find many ports taken by the others (a port
 * a worker keeps open for reuse is closed to the rest), so a PASV could fail while the range still had room.
 */
export function passiveSlice(range: Range, slot: number, slots: number): [number, number] {
  const [min, max] = range;
  const size = max - min + 1;
  const base = Math.floor(size / slots);
  const extra = size % slots;
  const start = min + slot * base + Math.min(slot, extra);
  return [start, start + base + (slot < extra ? 1 : 0) - 1];
}

/** Why a range cannot be shared by `slots` workers, or null when it can. */
export function passiveRangeProblem(range: Range | undefined, slots: number): string | null {
  const [min, max] = range ?? DEFAULT_SETTINGS.passivePortRange;
  const size = max - min + 1;
  return size >= slots ? null : `the passive port range ${min}-${max} has ${size} port(s) for ${slots} workers: each worker needs at least one of its own`;
}

/** The passive settings of worker `slot`: its share of the range and, with a NAT mapping, the same share of the advertised ports. */
export function slicePassiveSettings(
  settings: { passivePortRange?: Range | undefined; passivePortsAdvertised?: Range | undefined },
  slot: number,
  slots: number,
): { passivePortRange: [number, number]; passivePortsAdvertised?: [number, number] } {
  const range = settings.passivePortRange ?? DEFAULT_SETTINGS.passivePortRange;
  const mine = passiveSlice(range, slot, slots);
  const advertised = settings.passivePortsAdvertised;
  if (!advertised) return { passivePortRange: mine };
  const shift = advertised[0] - range[0];
  return { passivePortRange: mine, passivePortsAdvertised: [mine[0] + shift, mine[1] + shift] };
}
