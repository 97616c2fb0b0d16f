"""Messages internal to Octobot's processes: not part of the API, free to change."""
