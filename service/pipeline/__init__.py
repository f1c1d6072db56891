"""The pipeline joins the stages: read -> understand -> plan -> record -> enqueue, and a debrief's re-plan."""
