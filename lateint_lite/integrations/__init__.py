"""Retrievers for RAG frameworks, each behind its own extra:

* :mod:`lateint_lite.integrations.langchain` (``pip install 'lateint-lite[langchain]'``)
* :mod:`lateint_lite.integrations.llamaindex` (``pip install 'lateint-lite[llamaindex]'``)

Both wrap an open :class:`~lateint_lite.Index`; search options (mode, where,
fusion, exact, PLAID overrides) pass through unchanged, and stored metadata comes
back exactly as it was written.
"""
