"""Reading a trajectory: stored messages and tool calls as turns, steps and tool cards.

    trajectory = build_trajectory(execution, example=example)
    render(request, "collection/_trajectory.html", {"trajectory": trajectory, ...})

`build` turns the rows into a typed tree (a few queries, whatever the length), `render` turns
transcript text into safe HTML (Markdown through markdown-it-py and nh3, code through
pygments), `tools` says per tool which argument matters and how its card looks.
"""

from __future__ import annotations

from collection.viewer.build import Trajectory, build_trajectory

__all__ = ["Trajectory", "build_trajectory"]
