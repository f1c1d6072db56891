"""Planning: the policy, the business calendar and the pure plan of what to send when."""
