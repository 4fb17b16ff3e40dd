/** Bounds how many node attempts run at once; waiters are served first come, first served. */
export class Semaphore {
  private readonly waiters: (() => void)[] = [];
  private available: number;

  constructor(readonly capacity: number) {
    this.available = capacity;
  }

  acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.available++;
  }
}
