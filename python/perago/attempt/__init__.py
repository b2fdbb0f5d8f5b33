"""One task attempt, independent of any server: its identity, its local directory, input and
output validation, the result classification, and the pure publication decision with its
guard and fault points. Importing this package loads none of the SDKs."""
