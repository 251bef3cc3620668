// Bench-only preload (`--import` on the server child, see effectSeries in run.ts): writes each client stream's stanzas
// and each HTTP answer at once instead of at the end of the event-loop turn (lib/host/end-of-turn.ts), to measure
// what holding them is worth. DIFF: a monkey-patch, because the host has no switch for it (as preload-no-cache).

import { TurnEnd } from '../lib/host/net/end-of-turn.js';

TurnEnd.prototype.begin = () => 0;
TurnEnd.prototype.isGathering = () => false;
TurnEnd.prototype.defer = (task) => task();
TurnEnd.prototype.wait = () => undefined;
