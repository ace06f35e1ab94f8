"""A local stand-in for a distributed Beam runner: a job service and SDK workers in
separate processes, to prove the DAG's Beam work is portable (docs/scale-out.md)."""
