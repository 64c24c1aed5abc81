"""The browser journeys' steps as TAP tests: each step a test of its own, a
failed step failing alone, the report printed at the end."""
import traceback

results = []


def check(description):
    """Decorator: runs a step as one TAP test; a failed step fails alone."""
    def run(step):
        try:
            step()
            results.append((True, description, ""))
        except Exception:  # report it in TAP and go on with the next step
            results.append((False, description, traceback.format_exc()))
        return step
    return run


def failed(description):
    """Records a failure that happened outside a step (setting up)."""
    results.append((False, description, traceback.format_exc()))


def report():
    """Prints the TAP report; 0 when every step passed (and there was one)."""
    print("1..%d" % len(results))
    for n, (ok, description, detail) in enumerate(results, 1):
        print("%s %d - browser: %s" % ("ok" if ok else "not ok", n, description))
        for line in detail.splitlines():
            print("# " + line)
    return 0 if results and all(ok for ok, _, _ in results) else 1
