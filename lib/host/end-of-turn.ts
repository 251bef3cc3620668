// Writes held back to the end of the current event-loop turn (Node's check phase, one setImmediate for all): the
// client streams written to during the turn are flushed together, then the HTTP answers of the turn leave together.
// Netty's FlushConsolidationHandler does this for one connection; here it spans them (BENCHMARKS.md, "End of turn").

type Task = () => void;

export class TurnEnd {
  private tasks: Task[] = [];
  private isScheduled = false;
  /** How many turn ends have run. */
  private ended = 0;
  private answers: Promise<void> | undefined;
  private releaseAnswers: (() => void) | undefined;

  /**
   * Work starts in this turn (an HTTP request was read): its end is marked even if nothing is deferred in it, so
   * `wait` can tell whether the work finished in the turn it began in. Returns the turn's mark for `wait`.
   */
  begin(): number {
    this.schedule();
    return this.ended;
  }

  /** Run `task` once this turn's I/O callbacks are done, after the tasks deferred before it. */
  defer(task: Task): void {
    this.tasks.push(task);
    this.schedule();
  }

  /**
   * For an answer: resolves at the end of this turn, after every task of it (whether deferred before or after this
   * call), so a stream flushed in this turn (a delivered message) is on its socket before the answer that reports it.
   * Undefined, for "answer now", when the turn `begun` has already ended and nothing is deferred: the work went on
   * past its turn's I/O (a disk write in the check phase) and holding it would only add another turn to its wait.
   */
  wait(begun: number): Promise<void> | undefined {
    if (begun < this.ended && this.tasks.length === 0) return undefined;
    this.schedule();
    return (this.answers ??= new Promise((resolve) => (this.releaseAnswers = resolve)));
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
    for (const task of batch) task();
    release?.();
  }
}

/** The process's one turn end: every connection's writes of a turn share it. */
export const turnEnd = new TurnEnd();
