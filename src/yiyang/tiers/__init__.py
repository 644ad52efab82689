"""红黄绿三色服务机制: the red / yellow / green tier engine with explanations, and tier -> care plan.

``rules.evaluate_tier(facts, rules, as_of=...)`` is pure; ``service.retier_residents`` and
``service.sweep_tiers`` load facts, decide, store the tier, its history and the proposed plan.
"""
