// Writes held back to the end of the current event-loop turn (Node's check phase, one setImmediate for all): the
// client streams written to during the turn are flushed together, then the HTTP answers of the turn leave together.
// Netty's FlushConsolidationHandler does this for one connection; here it spans them (BENCHMARKS.md, "End of turn").

type Task = () => void;

export class TurnEnd {
  private tasks: Task[] = [];
  private isScheduled = false;
  private answers: Promise<void> | undefined;

  /** Run `task` once this turn's I/O callbacks are done, after the tasks deferred before it. */
  defer(task: Task): void {
    this.tasks.push(task);
    if (this.isScheduled) return;
    this.isScheduled = true;
    setImmediate(() => this.runTasks());
  }

  /**
   * Resolves at the end of this turn. What awaits it continues only after every task of the turn has run, whether
   * deferred before or after this call, so a stream flushed in this turn (a delivered message) is on its socket
   * before the HTTP answer that reports it is written.
   */
  wait(): Promise<void> {
    return (this.answers ??= new Promise((resolve) => {
      this.defer(() => {
        this.answers = undefined;
        resolve();
      });
    }));
  }

  private runTasks(): void {
    // Tasks deferred while these run (by a later callback of the check phase) get a turn of their own.
    const batch = this.tasks;
    this.tasks = [];
    this.isScheduled = false;
    for (const task of batch) task();
  }
}

/** The process's one turn end: every connection's writes of a turn share it. */
export const turnEnd = new TurnEnd();
