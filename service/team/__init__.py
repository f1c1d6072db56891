"""The sales team: reps (who may write to Keepwarm) and admins (who run it)."""
