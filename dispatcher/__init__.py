"""The campaign dispatcher.

Arrow's allocator is chosen here, before any of our modules loads pyarrow, because pyarrow
reads ``ARROW_DEFAULT_MEMORY_POOL`` once, when it loads: the C library's ``malloc`` unless the
environment chose another. With mimalloc (pyarrow's default) a million-row estimate peaked
~25 MB higher (332-339 MB against 309-314, alternated runs), for no CPU difference measurable
here; switching pools later (:class:`dispatcher.ingest.Pipeline` does when pyarrow was loaded
first) recovers part of it.
"""

import os

os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
