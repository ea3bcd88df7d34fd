"""Lightning callbacks."""

from lottery.callbacks.lottery import LotteryTicket
from lottery.callbacks.sleeping import sleeping_fractions

__all__ = ["LotteryTicket", "sleeping_fractions"]
