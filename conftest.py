"""Root conftest: nothing to add. The plugin `dd.pytest.plugin` loads through the pytest11 entry
point and brings the fixtures (`paper`, `bases`, `claim`) with it, here as in any project."""
