/**
 * Timers that do not blame a node for the coordinator's own stalls. When the event loop was blocked by a long
 * synchronous task, a timer that fell due meanwhile fires before the I/O that arrived meanwhile is read: the
 * heartbeat or hello that would have kept a connection sits unread in its socket buffer. So these timers act
 * only after an I/O pass (setImmediate runs after the poll phase), and a timer that fired late by more than
 * `slackMs` waits again for as long as the loop was stalled before it acts.
 */

export interface StopHandle {
  stop(): void;
}

/** Calls `fn` once, `ms` from now, counting only time the loop was free to read the nodes' messages. */
export function stallAwareTimeout(ms: number, fn: () => void, slackMs = 1000): StopHandle {
  let timer: NodeJS.Timeout | null = null;
  let immediate: NodeJS.Immediate | null = null;
  const arm = (wait: number) => {
    const due = performance.now() + wait;
    timer = setTimeout(() => {
      const late = performance.now() - due;
      if (late > slackMs) return arm(late);
      // A stall can also fall between this timer and its immediate (a long request handled in the poll phase).
      const fired = performance.now();
      immediate = setImmediate(() => {
        const stalled = performance.now() - fired;
        if (stalled > slackMs) arm(stalled);
        else fn();
      });
    }, wait);
  };
  arm(ms);
  return {
    stop() {
      if (timer) clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
    },
  };
}

/** Calls `fn` every `ms`, after an I/O pass; a tick that fired late by more than `slackMs` is skipped. */
export function stallAwareInterval(ms: number, fn: () => void, slackMs = 1000): StopHandle {
  let due = performance.now() + ms;
  let immediate: NodeJS.Immediate | null = null;
  const timer = setInterval(() => {
    const late = performance.now() - due;
    due = performance.now() + ms;
    if (late > slackMs) return;
    // A stall can also fall between the tick and its immediate (a long request handled in the poll phase).
    const fired = performance.now();
    immediate = setImmediate(() => {
      if (performance.now() - fired <= slackMs) fn();
    });
  }, ms);
  return {
    stop() {
      clearInterval(timer);
      if (immediate) clearImmediate(immediate);
    },
  };
}
