"""The pacer's tuning: every number :class:`~gooten_provider.client.pacer.Pacer` decides with, and why.

Each was chosen on ``bench/pace_model.py`` (the real pacer on a fake clock against the local API's token
bucket, over issue 19's grid of limits) and checked on the real local API (``make bench``, throttling grid);
``docs/reference.md`` ("Throttling") tells the controller they tune.
"""

#: Slots are taken at most this many seconds ahead (at least MIN_BOOKED of them) by waiting threads.
BOOKED_AHEAD = 0.02
MIN_BOOKED = 2
#: The slow start: START_RATE requests per second, doubled every SLOW_START_DOUBLING seconds until the first
#: 429 (not paced at all while answers come back at once).
START_RATE = 20.0
SLOW_START_DOUBLING = 0.2
#: At the first 429, the pace drops to this share of what the gateway took in the second before it.
BETA = 0.9
#: The paced rate never falls below this (requests per second), so a client always makes progress.
MIN_RATE = 0.5
#: At the first 429, the rate the gateway let through is counted over the last FIRST_CUT_ANSWERS answers of
#: the last ANSWERS_WINDOW seconds.
ANSWERS_WINDOW = 1.0
FIRST_CUT_ANSWERS = 8
#: Two 429s closer than this (seconds, or accepted answers between them) are one event: too close to measure.
MIN_SPAN = 0.2
MIN_COUNT = 5
#: 429s among the answers since the mark needed to call it riding above the limit (and measure it), and
#: the share of 429s at a held pace put down to jitter without a cut (when they carry no Retry-After).
RIDING = 0.04
TOLERATED = 0.03
#: 429s among the answers since the mark above which the pace is cut at once, before the limit is measured.
QUICK = 0.5
#: A 429 at a held pace when the gateway let through at least this share of the estimate since the last
#: one: put down to jitter (the margin is cut), not to a lower limit (the estimate is).
JITTER = 0.97
#: A 429 within this many seconds of the last one (or 4 paced slots) is the same event; after a Retry-After,
#: none is: the pause itself separates them.
CLUSTER_GAP = 0.5
#: The pace is held this share under the measured limit; cut by MARGIN_CUT (to MIN_MARGIN) each time a
#: held pace is refused (requests arriving closer than they left: a burst of 1 with jittery threads).
MARGIN = 0.95
MARGIN_CUT = 0.95
MIN_MARGIN = 0.7
#: After a cut the pace is held HOLD seconds (doubled, up to MAX_HOLD, each time a probe fails at the same
#: pace), then raised by PROBE_SLOPE of itself per second; a probe refused at pace p holds PROBE_BACKOFF*p.
HOLD = 5.0
HOLD_RETRY_AFTER = 10.0
#: While held, the pace still creeps up by this share of itself per second (a limit may rise meanwhile).
HOLD_SLOPE = 0.002
#: Not longer: a pace held under another task's share of a limit both tasks learnt apart (no shared store)
#: waits this long at most to take the share back once that task is done (three tasks, fast model, finite
#: work: 13 of 30 cells met with 120 s, 17 with 30 s; the one-task grid alike, 355 of 600 either way).
MAX_HOLD = 30.0
PROBE_SLOPE = 0.02
#: A probe past STALE times the pace last refused without a 429 finds that refusal out of date (the limit
#: rose, or a task sharing it is done): it rises fast again (as far under the next limit).
STALE = 1.1
#: Under NEAR times the pace last refused, the pace rises by FAST_SLOPE of itself per second instead; after
#: the first 429, it is held only FIRST_HOLD seconds.
NEAR = 0.8
FAST_SLOPE = 0.5
FAST_SLOPE_PAUSED = 0.1
FIRST_HOLD = 0.5
PROBE_BACKOFF = 0.9
FAST_BACKOFF = 0.7
PROBE_BACKOFF_NO_PAUSE = 0.97
FAST_BACKOFF_NO_PAUSE = 0.85
#: With a Retry-After, the limit is fitted to the answers (client/bucket_fit.py). A fitted range narrower than
#: FIT_NARROW (top over bottom) pins the limit: the pace is held under it for HOLD_FITTED seconds (doubled, up
#: to MAX_HOLD, when the pace refused is near the last one refused). A wider one is crossed: from
#: CROSSING_START of its top (its bottom may be a slow bucket with a deep burst, which fits a few answers as
#: well), rising by CROSSING_SLOPE of itself per second up to its top (then probing on), so the next 429 comes
#: after a slow crossing, which pins the limit.
FIT_NARROW = 1.1
#: A narrow range pins the limit at its middle, but at least PIN_FLOOR of the pace refused (PROBE_BACKOFF
#: after a refused crossing): a 429 lowers the pace by at most that much, since tasks sharing a bucket unseen
#: make a few answers fit a low limit (a deep burst) as well; 0.9 took ten 429s to reach a third of the rate.
PIN_FLOOR = 0.7
#: One 429 lowers the fitted limit to no less than this share of the pace refused.
FIT_FLOOR = 0.4
HOLD_FITTED = 30.0
CROSSING_START = 0.8
CROSSING_SLOPE = 0.15
#: Sharing a store, no slot is taken further ahead than SHARED_BOOKED slots of the account's pace (at most
#: SHARED_HORIZON seconds): a client whose slot would be later asks again, so a new pace applies within a
#: few slots however many clients wait. Each client then books at least MIN_BOOKED_SHARED slot (not
#: MIN_BOOKED), so up to 16 clients each hold a place in one queue: clients racing for a slot as it comes
#: within reach instead served the quickest askers (0.5 of the fastest's rate for the slowest in the model).
SHARED_HORIZON = 1.0
SHARED_BOOKED = 16
MIN_BOOKED_SHARED = 1
#: A client past the horizon asks again this many seconds after the slot comes within it (asking last must
#: not mean waiting longest).
SHARED_ASK_AGAIN = 0.05
