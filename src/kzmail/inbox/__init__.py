"""Read what comes back to the organiser's mailbox: replies and whether they are authentic."""
