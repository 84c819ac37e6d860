package collect

func dockerTeardown() {}
