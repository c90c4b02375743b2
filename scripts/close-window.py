#!/usr/bin/python3
"""Asks the X11 window named argv[1] to close, as a window manager's close button does
(WM_DELETE_WINDOW), for scripts/bench-desktop. Needs python3-xlib (Debian)."""
import sys
from Xlib import display, X, protocol
d = display.Display()
root = d.screen().root
atom = d.intern_atom
def walk(w):
    try:
        name = w.get_wm_name()
    except Exception:
        name = None
    yield w, name
    try:
        children = w.query_tree().children
    except Exception:  # the window went away meanwhile
        children = []
    for c in children:
        yield from walk(c)
found = False
for w, name in walk(root):
    if name == sys.argv[1]:
        ev = protocol.event.ClientMessage(window=w, client_type=atom('WM_PROTOCOLS'),
                                          data=(32, [atom('WM_DELETE_WINDOW'), X.CurrentTime, 0, 0, 0]))
        w.send_event(ev)
        found = True
d.flush()
print("closed" if found else "no window named " + sys.argv[1])
