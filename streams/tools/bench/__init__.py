"""`engage bench`: the benchmark and the probe programs it runs in processes of their own."""
