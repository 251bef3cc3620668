// Writes held back to the end of the current event-loop turn (Node's check phase, one setImmediate for all): the
// client streams written to during the turn are flushed together, then the HTTP answers of the turn leave together.
// Netty's FlushConsolidationHandler does this for one connection; here it spans them (BENCHMARKS.md measures what
// it is worth: the row with writes at the end of the turn off). The server makes one and hands it to the modules
// (ModuleApi.writeBatcher), so every connection's writes of a turn share it.

type Task = () => void;

export class TurnEnd {
  /** Off, every write goes out at once: the bench measures what holding them is worth. */
  isOn: boolean;
  private tasks: Task[] = [];
  private isScheduled = false;
  /** How many turn ends have run. */
  private ended = 0;
  /**
   * Requests begun in this turn and in the last one that had any. A request can't know whether others will be read
   * after it in the same turn; the last turn tells whether they come several at a time. With one at a time there is
   * nothing to gather, and holding a lone answer only makes it later: then nothing is held.
   */
  private begunNow = 0;
  private begunBefore = 0;
  private answers: Promise<void> | undefined;
  private releaseAnswers: (() => void) | undefined;

  constructor(options: { isOn?: boolean } = {}) {
    this.isOn = options.isOn ?? true;
  }

  /**
   * A request starts (it was read in this turn). This turn's end is marked even if nothing is deferred in it, so
   * `wait` can tell whether the request finished within its turn. Returns the turn's mark for `wait`.
   */
  begin(): number {
    if (!this.isOn) return 0;
    this.begunNow++;
    this.schedule();
    return this.ended;
  }

  /**
   * Run `task` once this turn's I/O callbacks are done, after the tasks deferred before it; at once while requests
   * come one at a time.
   */
  defer(task: Task): void {
    if (!this.isGathering()) {
      task();
      return;
    }
    this.tasks.push(task);
    this.schedule();
  }

  /**
   * For an answer: resolves at the end of this turn, after every task of it (whether deferred before or after this
   * call), so a stream flushed in this turn (a delivered message) is on its socket before the answer that reports it.
   * Undefined, for "answer now", when nothing is deferred and either requests come one at a time (nothing to gather
   * it with) or its turn `begun` has already ended: the request went on past its turn's I/O (a disk write in the
   * check phase), and holding it would only add another turn to its wait.
   */
  wait(begun: number): Promise<void> | undefined {
    if (this.tasks.length === 0 && (!this.isGathering() || begun < this.ended)) return undefined;
    this.schedule();
    return (this.answers ??= new Promise((resolve) => (this.releaseAnswers = resolve)));
  }

  /** Whether writes are being held to the end of the turn (requests come several at a time). */
  isGathering(): boolean {
    return this.isOn && (this.begunNow > 1 || this.begunBefore > 1);
  }

  private schedule(): void {
    if (this.isScheduled) return;
    this.isScheduled = true;
    setImmediate(() => this.end());
  }

  private end(): void {
    // Tasks deferred while these run (by a later callback of the check phase) go to the next turn end.
    const batch = this.tasks;
    const release = this.releaseAnswers;
    this.tasks = [];
    this.answers = undefined;
    this.releaseAnswers = undefined;
    this.isScheduled = false;
    this.ended++;
    if (this.begunNow > 0) this.begunBefore = this.begunNow;
    this.begunNow = 0;
    for (const task of batch) task();
    release?.();
  }
}
