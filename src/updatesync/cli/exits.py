"""The exit status of every `updatesync` command, for scripts and schedulers:

- 0 `DONE`: the command did what it was asked (a sync it ran or waited for succeeded);
- 1 `FAILED`: it could not (a store or a file it cannot read, a server that refused, an
  internal error), with one `error:` line saying what and what to do;
- 2 `USAGE`: the command line was wrong (an unknown option, a bad value), nothing was done;
- 3 `SYNC_FAILED`: a sync ran and failed (`updateserver sync`; `sync-now --wait` when the
  site's sync ended in 6703): the failure is in its output, and the next sync starts from
  what the failed one kept.

`logs track` exits 1 when the latest run of a site failed (`--no-fail`: 0), as it reports
rather than runs a sync.
"""

from __future__ import annotations

from typing import Final

DONE: Final = 0
FAILED: Final = 1
USAGE: Final = 2
SYNC_FAILED: Final = 3
