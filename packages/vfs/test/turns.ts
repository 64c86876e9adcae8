/** Event-loop turns (setImmediate ticks) while `work` runs: how often storage that works on the loop's thread lets others in. */
export async function turnsDuring(work: () => Promise<void>): Promise<number> {
  let turns = 0;
  let on = true;
  const tick = (): void => {
    if (!on) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    await work();
  } finally {
    on = false;
  }
  return turns;
}
