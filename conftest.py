pytest_plugins = ["tests.fixtures_db", "tests.fixtures_demo", "tests.fixtures_prefect"]
