"""What each command does, wired from the stages below; results are returned, never printed."""
