"""The browser test runs after every other test: `pytest` (the README's test command) collects it with the
rest, and this moves it to the end, so that CI reports the unit tests and notebooks first."""


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: "tests/browser/" in item.nodeid.replace("\\", "/"))
