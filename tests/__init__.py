"""The test suite (a package, so that its helpers are ordinary imports: ``tests._helpers``)."""
