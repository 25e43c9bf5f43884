"""The text of an unhappy upload, as Tahoe-LAFS 1.20 words it (util/happinessutil.py
``failure_message``): scripts match these sentences, so they are kept word for word.

Three cases, by `peer_count` (servers that hold or took a share), `k`, the
`happy` asked for and the `effective_happy` reached:

- fewer servers than k: "shares could be placed or found on only N server(s). ..."
- enough servers, but no k of them can rebuild the file: "... not spread out evenly ..."
- otherwise: "shares could be placed on only H server(s) such that any k of them have
  enough shares to recover the file, but we were asked to place shares on at least
  HAPPY such servers."
"""


def failure_message(peer_count: int, k: int, happy: int, effective_happy: int) -> str:
    """Tahoe 1.20's sentence for an upload that reached `effective_happy` < `happy`."""
    if peer_count < k:
        return (f"shares could be placed or found on only {peer_count} server(s). "
                f"We were asked to place shares on at least {happy} server(s) such that any "
                f"{k} of them have enough shares to recover the file.")
    if effective_happy < k:
        return (f"shares could be placed or found on {peer_count} server(s), but they are not "
                f"spread out evenly enough to ensure that any {k} of these servers would have "
                f"enough shares to recover the file. We were asked to place shares on at least "
                f"{happy} servers such that any {k} of them have enough shares to recover the file.")
    return (f"shares could be placed on only {effective_happy} server(s) such that any {k} of them "
            f"have enough shares to recover the file, but we were asked to place shares on at "
            f"least {happy} such servers.")
