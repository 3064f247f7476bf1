"""Domain operations: functions taking the db session first; the caller commits.

Nothing here touches the request, g, current_app or flash, so the web views, the JSON
API, the CLI and the workers all call the same code.
"""
