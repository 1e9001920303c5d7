"""Root conftest: the plugin `dd.plugin` is loaded through the pytest11 entry point; this file
only adds the fixture modules that claims and tests share."""

pytest_plugins = ["fixtures.artifacts", "fixtures.bases"]
