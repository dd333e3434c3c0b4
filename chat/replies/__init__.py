"""Replies in flight: the runtime that streams each reply to the tabs that watch it.

- ``registry``: the replies running in this process; start, find, stop, settle at shutdown.
- ``reply``: one reply's life: it runs, it is saved (Stop is handled there), its last frame.
- ``runner``: asks the gateway (failover, rebuilt history, early requests), returns an outcome.
- ``relay``: the tabs of this process watching a reply: coalescing, one bounded queue each.
- ``bridge``: the channel layer, for tabs served by other processes.
- ``copies``: every copy Azure names, in the ledger before any of its text is shown.
- ``request``: the request itself, and the early request sent while the turn is saved.
- ``resume``: background mode: a dropped stream taken up again, a dead process's reply resumed.
"""

from chat.replies.bridge import PROCESS_ID, tabs_group
from chat.replies.registry import (
    active_reply,
    branch_shown,
    replies_shutdown,
    replies_sweep,
    reply_early,
    reply_start,
    reply_stop,
    reply_watch_remotely,
)
from chat.replies.reply import ActiveReply
from chat.replies.request import EarlyRequest
from chat.replies.runner import Prepared, reply_prepare_ahead

__all__ = [
    "PROCESS_ID",
    "ActiveReply",
    "EarlyRequest",
    "Prepared",
    "active_reply",
    "branch_shown",
    "replies_shutdown",
    "replies_sweep",
    "reply_early",
    "reply_prepare_ahead",
    "reply_start",
    "reply_stop",
    "reply_watch_remotely",
    "tabs_group",
]
