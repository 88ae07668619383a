"""The pytest plugin (registered through the ``pytest11`` entry point), one module per concern.

* :mod:`~llmkit.plugin.state` — the run's state on ``config.stash``: catalog, implementation
  roots, seed, results;
* :mod:`~llmkit.plugin.options` — command-line options, markers, process-wide settings
  (threads, Triton's interpreter, hypothesis's profile and seed), the report header;
* :mod:`~llmkit.plugin.sandboxing` — the grading sandbox's lifetime (``--sandbox``);
* :mod:`~llmkit.plugin.fixtures` — ``impl``, ``impl_files``, ``exercise``, ``draw``,
  ``record_metric``; several ``--impl`` roots become a parameter of every test;
* :mod:`~llmkit.plugin.running` — test order, GPU skips, the ban trap, a mutant's early stop;
* :mod:`~llmkit.plugin.bans` — the generated ``test_no_library_shortcuts`` of every exercise
  with banned calls;
* :mod:`~llmkit.plugin.outcomes` — "not started", check failures without engine tracebacks,
  hidden graders' messages, one :class:`~llmkit.result.TestResult` per test;
* :mod:`~llmkit.plugin.summary` — the per-exercise table at the end of a run;
* :mod:`~llmkit.plugin.report` — the canonical JSON result, registered only with
  ``--llmkit-report PATH``.
"""

from llmkit.progress import NO_GPU, format_summary, summarize

pytest_plugins = [
    "llmkit.plugin.options",
    "llmkit.plugin.sandboxing",
    "llmkit.plugin.fixtures",
    "llmkit.plugin.running",
    "llmkit.plugin.bans",
    "llmkit.plugin.outcomes",
    "llmkit.plugin.summary",
]

__all__ = ["NO_GPU", "format_summary", "summarize"]
