# PublishTaskRecord arrives with the publishing issue (seed 000).
