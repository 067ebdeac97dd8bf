import CSQLite
print(String(cString: sqlite3_libversion()))
