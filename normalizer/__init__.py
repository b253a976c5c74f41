"""Pure functions: ChannelMessage -> ComplaintRecord. No I/O, no clock but an argument."""

from normalizer.normalize import NeedsHelp, NewComplaint, Outcome, StatusQuery, normalize
from normalizer.types import Attachment, ChannelMessage, ComplaintRecord, Location, Reporter

__all__ = [
    "Attachment",
    "ChannelMessage",
    "ComplaintRecord",
    "Location",
    "NeedsHelp",
    "NewComplaint",
    "Outcome",
    "Reporter",
    "StatusQuery",
    "normalize",
]
