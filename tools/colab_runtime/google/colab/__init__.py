"""A stand-in for Colab's `google.colab` package, for `tools/colab_check.py` and the tests: its presence in
`sys.modules` is how the setup cells recognise Colab, and `drive.mount` is all of it the series calls."""
