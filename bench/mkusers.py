#!/usr/bin/env python3
"""Write N bench users (user<i>@DOMAIN, password pw<i>: what `sipbench register` and `storm`
use) into a new SQLite file with a peer's own schema, for bench/run-auth.sh and run-storm.sh.

  bench/mkusers.py kamailio|opensips DB N [DOMAIN]

kamailio: /usr/share/kamailio/db_sqlite/{standard,auth_db}-create.sql (subscriber version 7;
  ha1 = MD5(user:realm:password), ha1b = MD5(user@domain:realm:password)).
opensips: $OPENSIPS/share/opensips/sqlite/{standard,auth_db}-create.sql (subscriber version 8;
  ha1, ha1_sha256, ha1_sha512t256 of user:realm:password). The realm is the domain.
Clear passwords are not stored (both servers run with calculate_ha1 0)."""
import hashlib
import os
import sqlite3
import sys


def h(name, s):
    return hashlib.new(name, s.encode()).hexdigest()


def main():
    kind, db, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    dom = sys.argv[4] if len(sys.argv) > 4 else "example.com"
    if kind == "kamailio":
        d = "/usr/share/kamailio/db_sqlite"
    elif kind == "opensips":
        d = os.environ.get("OPENSIPS", "/opt/opensips-3.6") + "/share/opensips/sqlite"
    else:
        sys.exit("kind: kamailio or opensips")
    if os.path.exists(db):
        os.remove(db)
    c = sqlite3.connect(db)
    for f in ("standard-create.sql", "auth_db-create.sql"):
        with open(os.path.join(d, f)) as sql:
            c.executescript(sql.read())
    rows = []
    for i in range(n):
        u, p = f"user{i}", f"pw{i}"
        if kind == "kamailio":
            rows.append((u, dom, "", h("md5", f"{u}:{dom}:{p}"), h("md5", f"{u}@{dom}:{dom}:{p}")))
        else:
            a = f"{u}:{dom}:{p}"
            rows.append((u, dom, "", h("md5", a), h("sha256", a), h("sha512_256", a)))
    if kind == "kamailio":
        c.executemany(
            "INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (?,?,?,?,?)", rows)
    else:
        c.executemany(
            "INSERT INTO subscriber (username, domain, password, ha1, ha1_sha256, ha1_sha512t256)"
            " VALUES (?,?,?,?,?,?)", rows)
    c.commit()
    c.close()


main()
