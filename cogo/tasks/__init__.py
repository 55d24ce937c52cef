"""Task-log rollups and the checks on agent_tasks/task_steps, Dagster-free (cogo.assets.tasks wraps them).

Attribution rules, in one place:
- A task, its steps, its tokens and its cost count on the UTC day of the task's created_at, whatever
  its status and however long it ran (a task spanning midnight counts on the day it was created).
- A message counts for the task of its conversation created most recently at or before the message
  (ties on created_at: the larger id). Messages before a conversation's first task count for no task.
- A message's token_count is priced at its model's input price (user/system/tool) or output price
  (assistant), from model_prices at the message's day; the model is messages.model, else the agent's
  model_name. Tokens of a model without a price count in unpriced_tokens, at cost 0.
"""
