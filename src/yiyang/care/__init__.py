"""Closed-loop care (照护闭环): contracts, work items, follow-ups, referrals, service orders."""
