#!/usr/bin/env bash
# run.sh: the browser suite's scripts, run by `make demo-gate` (which sets
# TFAUTH_DEMO_URL, and TFAUTH_TEST_URL for the reference backend): the
# journey through the demo, then the planted-cookie journey (its own nginx,
# behind HTTPS). Prints their TAP; fails when either does.
cd "$(dirname "$0")/../.."
/usr/bin/python3 spec/browser/journey.py
journey=$?
/usr/bin/python3 spec/browser/planted_cookie.py
planted=$?
[ "$journey" -eq 0 ] && [ "$planted" -eq 0 ]
